package mmdb

import (
	"errors"

	"github.com/mmdb-go/mmdb/internal/storage"
	"github.com/mmdb-go/mmdb/modality"
)

// Sentinel errors. Every error mmdb returns for one of these conditions
// wraps the matching value, with a message naming the item, modality or
// file concerned.
var (
	// ErrClosed: the DB has been closed.
	ErrClosed = storage.ErrClosed
	// ErrNotFound: no item has the given ID.
	ErrNotFound = errors.New("not found")
	// ErrUnknownModality: a name that DefineModality never defined.
	ErrUnknownModality = errors.New("unknown modality")
	// ErrModalityConflict: DefineModality with an existing name but another
	// Dim, Metric or Space.
	ErrModalityConflict = errors.New("modality already defined differently")
	// ErrInvalidID: an empty ID, an ID over MaxIDLen bytes, or one that is
	// not valid UTF-8.
	ErrInvalidID = errors.New("invalid item ID")
	// ErrNoRoute: the probe's modality cannot reach the target's.
	ErrNoRoute = errors.New("no route between modalities")
	// ErrNoEncoder: raw content (a file, bytes, text) given for a modality
	// without an encoder, or whose encoder's standardisation is not
	// fitted yet.
	ErrNoEncoder = errors.New("no encoder")
	// ErrInvalidQuery: a malformed Query.
	ErrInvalidQuery = errors.New("invalid query")
	// ErrChanged: an alignment or calibration that a long measurement
	// (Evaluate, Calibrate) depends on was replaced while it ran; run it
	// again.
	ErrChanged = errors.New("changed while in use")
	// ErrIndex: a modality's index failed and could not be rebuilt; its
	// searches and writes fail until the database is reopened.
	ErrIndex = errors.New("index unavailable")
	// ErrUnknownAttribute: a filter compares an attribute that no item
	// has (EXISTS tests may name any attribute).
	ErrUnknownAttribute = errors.New("no such attribute")

	// ErrDimension: a vector's length differs from its modality's Dim.
	ErrDimension = modality.ErrDimension
	// ErrInvalidVector: NaN or Inf values, or a zero vector under Cosine.
	ErrInvalidVector = modality.ErrInvalidVector
	// ErrInvalidSchema: a malformed Modality definition.
	ErrInvalidSchema = modality.ErrInvalidSchema
	// ErrAttribute: an attribute name or value mmdb cannot store.
	ErrAttribute = storage.ErrAttribute
	// ErrNotDatabase: Open found a file that is not an mmdb database.
	ErrNotDatabase = storage.ErrNotDatabase
	// ErrVersion: Open found a file written by a newer mmdb.
	ErrVersion = storage.ErrVersion
	// ErrLocked: the file is open in another handle or process (bbolt
	// allows one writer per file) and Options.Timeout passed.
	ErrLocked = storage.ErrLocked
	// ErrCorrupt: the file is damaged (cut short, a damaged page) or a
	// stored value could not be decoded.
	ErrCorrupt = storage.ErrCorrupt
)
