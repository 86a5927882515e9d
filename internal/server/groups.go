package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/mmdb-go/mmdb"
	"github.com/mmdb-go/mmdb/query"
)

// groupsRequest is Qdrant's QueryGroupsRequest.
type groupsRequest struct {
	Query          json.RawMessage `json:"query"`
	Using          *string         `json:"using"`
	Filter         json.RawMessage `json:"filter"`
	Params         json.RawMessage `json:"params"`
	ScoreThreshold *float32        `json:"score_threshold"`
	Limit          *int            `json:"limit"`
	WithVector     json.RawMessage `json:"with_vector"`
	WithPayload    json.RawMessage `json:"with_payload"`
	GroupBy        string          `json:"group_by"`
	GroupSize      *int            `json:"group_size"`
	WithLookup     json.RawMessage `json:"with_lookup"`
	Prefetch       json.RawMessage `json:"prefetch"`
	LookupFrom     json.RawMessage `json:"lookup_from"`
	ShardKey       json.RawMessage `json:"shard_key"`
}

// group is one group of Qdrant's answer.
type group struct {
	ID   any      `json:"id"`
	Hits []record `json:"hits"`
}

// maxGroupRounds bounds the searches of one groups request: each round
// searches twice as deep for groups that are not full yet.
const maxGroupRounds = 4

// queryGroups is POST /points/query/groups: the best limit groups (values
// of group_by, ranked by their best hit), each with its best group_size
// hits. The server groups the ranked hits itself (strings and integers,
// each element of a list once): a search limit x group_size deep, and
// while the groups are not full and more hits may lie deeper, again
// twice as deep, at most maxGroupRounds times (a group may then hold
// fewer hits than there are, as Qdrant's may). Points without the key are
// in no group.
func (s *Server) queryGroups(r *http.Request, db *mmdb.DB, _ *collection) (any, error) {
	var req groupsRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if err := unsupported(map[string]json.RawMessage{"with_lookup": req.WithLookup}); err != nil {
		return nil, err
	}
	if req.GroupBy == "" {
		return nil, badf("group_by is required")
	}
	limit, size := 10, 3 // Qdrant's defaults
	if req.Limit != nil {
		limit = *req.Limit
	}
	if req.GroupSize != nil {
		size = *req.GroupSize
	}
	if limit < 1 || size < 1 || limit > mmdb.MaxK/size {
		return nil, badf("limit %d groups of group_size %d: each at least 1, and at most %d hits in all", limit, size, mmdb.MaxK)
	}
	spec, err := buildSpec(db, &queryRequest{Query: req.Query, Using: req.Using, Prefetch: req.Prefetch, LookupFrom: req.LookupFrom,
		searchFields: searchFields{Filter: req.Filter, Params: req.Params, ScoreThreshold: req.ScoreThreshold,
			WithPayload: req.WithPayload, ShardKey: req.ShardKey}})
	if err != nil {
		return nil, err
	}
	mods := db.Modalities()
	vs, err := parseVectorSelector(req.WithVector, mods) // fetched for the hits kept only
	if err != nil {
		return nil, err
	}
	spec.needAttrs = true
	spec.also = query.Has(req.GroupBy) // points without the key are in no group
	var groups []group
	for round, k := 0, limit*size; ; round++ {
		spec.limit = &k
		recs, hits, err := runHits(r.Context(), db, spec)
		if err != nil {
			return nil, err
		}
		var full bool
		groups, full = groupHits(recs, hits, req.GroupBy, limit, size)
		if full || len(hits) < k || k == mmdb.MaxK || round == maxGroupRounds-1 {
			break
		}
		k = min(2*k, mmdb.MaxK)
	}
	if vs != nil {
		for gi := range groups {
			for hi, rec := range groups[gi].Hits {
				it, err := db.Get(r.Context(), idString(rec.ID))
				if err != nil && !errors.Is(err, mmdb.ErrNotFound) {
					return nil, err
				}
				groups[gi].Hits[hi].Vector = outVectors(it, vs, mods)
			}
		}
	}
	return map[string]any{"groups": groups}, nil
}

// idString is a record's ID as mmdb's item ID.
func idString(id any) string {
	if n, ok := id.(uint64); ok {
		return strconv.FormatUint(n, 10)
	}
	return id.(string)
}

// groupHits gathers hits into groups by the value of key, in order of
// their best hit, keeping the first limit; full says whether each of them
// holds size hits.
func groupHits(recs []record, hits []mmdb.Hit, key string, limit, size int) ([]group, bool) {
	index := map[string]int{}
	var groups []group
	for i, h := range hits {
		seen := map[string]bool{} // a list naming a value twice is in its group once
		for _, v := range groupValues(h.Attrs[key]) {
			k := fmt.Sprintf("%T:%v", v, v)
			if seen[k] {
				continue
			}
			seen[k] = true
			gi, ok := index[k]
			if !ok {
				if len(groups) == limit {
					continue
				}
				gi = len(groups)
				index[k] = gi
				groups = append(groups, group{ID: v})
			}
			if len(groups[gi].Hits) < size {
				groups[gi].Hits = append(groups[gi].Hits, recs[i])
			}
		}
	}
	full := len(groups) == limit
	for _, g := range groups {
		full = full && len(g.Hits) == size
	}
	if groups == nil {
		groups = []group{}
	}
	return groups, full
}

// groupValues are the group IDs an attribute value puts its item in:
// strings and integers (as Qdrant groups by), each element of a list.
func groupValues(v any) []any {
	switch x := v.(type) {
	case string, int64:
		return []any{x}
	case []string:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = s
		}
		return out
	}
	return nil // floats, bools and absent values make no group, as in Qdrant
}
