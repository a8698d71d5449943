package report

import (
	"encoding/json"
	"fmt"
	"io"
)

// WriteJSON writes the report as one indented JSON document.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if r.Attempts == nil {
		r.Attempts = []Attempt{}
	}
	return enc.Encode(r)
}

// ReadJSON loads a report written by WriteJSON, checking its schema.
func ReadJSON(rd io.Reader) (*Report, error) {
	var r Report
	dec := json.NewDecoder(rd)
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("decoding report: %w", err)
	}
	if r.Schema != Schema {
		return nil, fmt.Errorf("unsupported report schema %q (want %q)", r.Schema, Schema)
	}
	return &r, nil
}
