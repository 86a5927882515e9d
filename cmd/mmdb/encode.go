package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/mmdb-go/mmdb"
	"github.com/mmdb-go/mmdb/encoder"
	"github.com/mmdb-go/mmdb/modality"
	"github.com/spf13/cobra"
)

func encodeCmd() *cobra.Command {
	c := newCmd("encode DB MODALITY FILE|TEXT", "print the vector a modality's encoder makes of a file or a text",
		"Encodes FILE (a WAV, PNG or JPEG file) or TEXT with the modality's encoder, as an import or a\n"+
			"probe would (standardised by the fitted standardisation, normalised under cosine), and\n"+
			"prints the vector as a JSON list. A modality whose encoder takes text reads the argument as\n"+
			"text; any other reads it as a file path.",
		"mmdb encode media.mmdb audio recordings/3_theo_0.wav\n  mmdb encode media.mmdb caption 'a brown dog on grass'", 3)
	c.RunE = func(c *cobra.Command, args []string) error {
		if err := mustExist(args[0]); err != nil {
			return err
		}
		db, err := mmdb.Open(args[0], &mmdb.Options{ReadOnly: true})
		if err != nil {
			return err
		}
		defer db.Close()
		in := encoder.Input{Text: args[2]}
		for _, m := range db.Modalities() {
			if m.Name == args[1] && m.Encoder != nil && m.Encoder.Input() != encoder.InputText {
				if in.Data, err = encoder.ReadFile(args[2]); err != nil {
					return fmt.Errorf("%w: modality %q: %w", errUsage, m.Name, err)
				}
				in.Text = ""
			}
		}
		vecs, err := db.Encode(c.Context(), args[1], in)
		if err != nil {
			return err
		}
		out, err := json.Marshal(vecs[0])
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(c.OutOrStdout(), "%s\n", out)
		return err
	}
	return c
}

func defineCmd() *cobra.Command {
	c := newCmd("define DB NAME [DIM [METRIC [SPACE]]]", "define a modality, with the encoder that makes its vectors",
		"Defines modality NAME (DIM, METRIC and SPACE may also be given as --dim, --metric, --space).\n"+
			"--encoder names how its vectors are made from raw content, so that\n"+
			"imports and probes can give files or text: mfcc (WAV audio) and image (PNG/JPEG pictures)\n"+
			"are built in, and their dimension is theirs; openai is a server speaking OpenAI's\n"+
			"/v1/embeddings API (Infinity, vLLM, Ollama, LocalAI, text-embeddings-inference), given by\n"+
			"--url, --model and --input (text or image), with --dim the model's dimension and\n"+
			"--key-env the environment variable that holds its API key, if it needs one (keys are never\n"+
			"stored). Without --encoder, vectors are given by the caller and --dim is required.\n"+
			"Modalities that share --space are compared directly. --multi maxsim (or maxpair) makes a\n"+
			"multi-vector modality: an item holds a set of up to 256 DIM-d vectors (tokens, patches,\n"+
			"segments), scored by late interaction; with --encoder mfcc its vectors are the recording's\n"+
			"segments of time (12-d each), with --encoder image the picture's patches (24-d each).",
		"mmdb define media.mmdb audio --encoder mfcc\n"+
			"  mmdb define media.mmdb caption --encoder openai --url http://localhost:7997 --model openai/clip-vit-base-patch32 --input text --dim 512 --space clip\n"+
			"  mmdb define media.mmdb photo 512 cosine clip\n"+
			"  mmdb define media.mmdb tokens 128 cosine colbert --multi maxsim", -1)
	kind := c.Flags().String("encoder", "", "mfcc, image or openai; empty: vectors given by callers")
	dim := c.Flags().Int("dim", 0, "the vector dimension (the built-in encoders' own by default)")
	metric := c.Flags().String("metric", "cosine", "cosine, dot or l2")
	space := c.Flags().String("space", "", "the embedding space: modalities that share one are compared directly")
	url := c.Flags().String("url", "", "openai: the server's root URL")
	model := c.Flags().String("model", "", "openai: the model name")
	input := c.Flags().String("input", "text", "openai: what the model embeds, text or image")
	keyEnv := c.Flags().String("key-env", "", "openai: the environment variable holding the API key")
	multi := c.Flags().String("multi", "", "maxsim or maxpair: a set of vectors an item, scored by late interaction")
	asJSON := jsonFlag(c)
	c.RunE = func(c *cobra.Command, args []string) error {
		if len(args) < 2 || len(args) > 5 {
			return fmt.Errorf("%w: want DB NAME [DIM [METRIC [SPACE]]], got %d arguments", errUsage, len(args))
		}
		if len(args) > 2 {
			n, err := strconv.Atoi(args[2])
			if err != nil {
				return fmt.Errorf("%w: dimension %q is not a number", errUsage, args[2])
			}
			*dim = n
		}
		if len(args) > 3 {
			*metric = args[3]
		}
		if len(args) > 4 {
			*space = args[4]
		}
		met, err := modality.ParseMetric(strings.ToLower(*metric))
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		agg, err := modality.ParseMulti(strings.ToLower(*multi))
		if err != nil {
			return fmt.Errorf("%w: --multi: %v", errUsage, err)
		}
		m := mmdb.Modality{Name: args[1], Dim: *dim, Metric: met, Space: *space, Multi: agg}
		switch k := encoder.Kind(*kind); k {
		case "":
		case encoder.KindMFCC:
			m.Encoder = &encoder.Spec{Kind: k}
		case encoder.KindImage:
			// A set of pictures' patches: one vector a cell.
			m.Encoder = &encoder.Spec{Kind: k, Image: &encoder.Image{Patches: agg != modality.Single}}
		case encoder.KindOpenAI:
			m.Encoder = &encoder.Spec{Kind: k, Remote: &encoder.Remote{URL: *url, Model: *model, Input: encoder.InputKind(*input), Dimensions: 0, KeyEnv: *keyEnv}}
		default:
			return fmt.Errorf("%w: --encoder %q: want mfcc, image or openai", errUsage, *kind)
		}
		remote := *url != "" || *model != "" || *keyEnv != "" || c.Flags().Changed("input")
		if remote && (m.Encoder == nil || m.Encoder.Kind != encoder.KindOpenAI) {
			return fmt.Errorf("%w: --url, --model, --input and --key-env are for --encoder openai", errUsage)
		}
		if err := m.WithDefaults().Validate(); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		_, statErr := os.Stat(args[0])
		db, err := mmdb.Open(args[0], nil)
		if err != nil {
			return err
		}
		if err := db.DefineModality(m); err != nil {
			empty := len(db.Modalities()) == 0
			db.Close()
			if statErr != nil && empty {
				os.Remove(args[0]) // created for this define: leave nothing behind
			}
			return err
		}
		defer db.Close()
		if statErr != nil {
			fmt.Fprintf(c.ErrOrStderr(), "created %s\n", args[0])
		}
		for _, d := range db.Modalities() {
			if d.Name == m.Name {
				m = d
			}
		}
		return report(c.OutOrStdout(), *asJSON, m, fmt.Sprintf("defined %s: %d-d %v in space %q, encoder %s%s\n", m.Name, m.Dim, m.Metric, m.SpaceName(), encoderName(m.Encoder), setNote(m)))
	}
	return c
}

// encoderName names a modality's encoder for listings.
func encoderName(s *encoder.Spec) string {
	if s == nil {
		return "none"
	}
	return s.String()
}

// parseMetric reads a --metric flag.
func parseMetric(s string) (mmdb.Metric, error) {
	return modality.ParseMetric(strings.ToLower(s))
}

func dropCmd() *cobra.Command {
	c := newCmd("drop DB MODALITY", "remove a modality: its vectors, index, alignments and calibrations",
		"Removes MODALITY from DB in one transaction: every vector of it, its index, and the\n"+
			"alignments and calibrations to or from it. Items keep their attributes and other vectors.\n"+
			"It rewrites the schema, so the file must not be open elsewhere (it waits for the lock as\n"+
			"every command does, then fails).",
		"mmdb drop media.mmdb audio", 2)
	asJSON := jsonFlag(c)
	c.RunE = func(c *cobra.Command, args []string) error {
		if err := mustExist(args[0]); err != nil {
			return err
		}
		if err := mmdb.DropModality(c.Context(), args[0], args[1], nil); err != nil {
			return err
		}
		return report(c.OutOrStdout(), *asJSON, map[string]string{"dropped": args[1]}, fmt.Sprintf("dropped modality %s\n", args[1]))
	}
	return c
}
