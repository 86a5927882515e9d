package transfer

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/mmdb-go/mmdb"
)

// milvusSchema is the create-collection request (Milvus REST v2,
// POST /v2/vectordb/collections/create) matching the file: the primary
// key "id", the vector field, a typed field for each typed column, and
// "attrs" as JSON.
func milvusSchema(info ForFile, st *modStats) ([]byte, error) {
	metric := map[string]string{"cosine": "COSINE", "dot": "IP", "l2": "L2"}[strings.ToLower(info.Metric)]
	if metric == "" {
		return nil, fmt.Errorf("transfer: modality %q: metric %s has no Milvus equivalent", info.Modality, info.Metric)
	}
	fields := []map[string]any{
		{"fieldName": "id", "dataType": "VarChar", "isPrimary": true, "elementTypeParams": map[string]any{"max_length": mmdb.MaxIDLen}},
		{"fieldName": info.Vector, "dataType": "FloatVector", "elementTypeParams": map[string]any{"dim": info.Dim}},
	}
	hasJSON := false
	for _, c := range info.Columns {
		a := st.attrs[c.Attr]
		f := map[string]any{"fieldName": c.Column}
		switch c.Type {
		case "json":
			hasJSON = true
			continue
		case "string":
			f["dataType"] = "VarChar"
			f["elementTypeParams"] = map[string]any{"max_length": max(1, a.maxBytes)}
		case "int64":
			f["dataType"] = "Int64"
		case "double":
			f["dataType"] = "Double"
		case "bool":
			f["dataType"] = "Bool"
		case "string_list":
			f["dataType"] = "Array"
			f["elementDataType"] = "VarChar"
			f["elementTypeParams"] = map[string]any{"max_capacity": max(1, a.maxElements), "max_length": max(1, a.maxBytes)}
		}
		if c.Nullable {
			f["nullable"] = true
		}
		fields = append(fields, f)
	}
	if hasJSON {
		fields = append(fields, map[string]any{"fieldName": jsonColumn, "dataType": "JSON"})
	}
	req := map[string]any{
		"collectionName": info.Collection,
		"schema":         map[string]any{"autoId": false, "enableDynamicField": false, "fields": fields},
		"indexParams":    []map[string]any{{"fieldName": info.Vector, "metricType": metric, "indexType": "AUTOINDEX"}},
	}
	b, err := json.MarshalIndent(req, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
