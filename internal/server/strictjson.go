package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/mmdb-go/mmdb/internal/jsonvec"
)

// strictUnmarshal decodes raw into v (a pointer to a struct) as Qdrant's
// server does and encoding/json does not: keys match field names exactly
// (encoding/json would take "Filter" for filter, and the last of
// "filter" and "Filter"), a key may not repeat, and unknown keys are
// refused. Nested structs, pointers to them and slices of them are decoded
// the same way; other fields (json.RawMessage among them) go through
// encoding/json.
func strictUnmarshal(raw json.RawMessage, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("strictUnmarshal: want a non-nil pointer, got %T", v)
	}
	return strictValue(bytes.TrimSpace(raw), rv.Elem(), "")
}

// fieldsOf maps a struct type's JSON names to field index paths (the
// fields of an embedded struct are promoted, as encoding/json does).
var fieldsOf sync.Map // reflect.Type -> map[string][]int

func jsonFields(t reflect.Type) map[string][]int {
	if m, ok := fieldsOf.Load(t); ok {
		return m.(map[string][]int)
	}
	m := map[string][]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			for name, path := range jsonFields(f.Type) {
				m[name] = append([]int{i}, path...)
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = []int{i}
	}
	fieldsOf.Store(t, m)
	return m
}

var rawType = reflect.TypeOf(json.RawMessage(nil))

func strictValue(raw []byte, v reflect.Value, path string) error {
	t := v.Type()
	switch {
	case t == rawType:
		v.SetBytes(append([]byte(nil), raw...))
		return nil
	case t.Kind() == reflect.Pointer && isStructish(t.Elem()):
		if string(raw) == "null" {
			v.SetZero()
			return nil
		}
		p := reflect.New(t.Elem())
		if err := strictValue(raw, p.Elem(), path); err != nil {
			return err
		}
		v.Set(p)
		return nil
	case t.Kind() == reflect.Slice && isStructish(t.Elem()):
		if string(raw) == "null" {
			v.SetZero()
			return nil
		}
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return fmt.Errorf("%s: want a list: %v", where(path), err)
		}
		s := reflect.MakeSlice(t, len(items), len(items))
		for i, it := range items {
			if err := strictValue(bytes.TrimSpace(it), s.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	case t.Kind() == reflect.Struct:
		if string(raw) == "null" {
			return nil
		}
		fields := jsonFields(t)
		return jsonvec.Fields(raw, func(key string, val json.RawMessage) error {
			i, ok := fields[key]
			if !ok {
				return fmt.Errorf("%s: unknown field %q", where(path), key)
			}
			return strictValue(bytes.TrimSpace(val), v.FieldByIndex(i), join(path, key))
		})
	}
	if err := json.Unmarshal(raw, v.Addr().Interface()); err != nil {
		return fmt.Errorf("%s: %v", where(path), err)
	}
	return nil
}

// isStructish: a struct, or a pointer to one.
func isStructish(t reflect.Type) bool {
	return t.Kind() == reflect.Struct || (t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func where(path string) string {
	if path == "" {
		return "the request"
	}
	return path
}
