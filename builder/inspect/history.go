package inspect

import (
	"context"
	"fmt"
	"slices"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// HistoryEntry is one row of `minibuild history`: one entry of the image's
// history, with the layer it made.
type HistoryEntry struct {
	Created    time.Time `json:"created"`
	CreatedBy  string    `json:"created_by"`
	Comment    string    `json:"comment,omitempty"`
	EmptyLayer bool      `json:"empty_layer,omitempty"`
	// Layer is the 1-based index of the layer the entry made; 0 for an
	// empty_layer entry (ENV, CMD, …) and for entries without a layer.
	Layer int `json:"layer,omitempty"`
	// Digest and DiffID name the layer (zero without one).
	Digest v1.Hash `json:"digest,omitzero"`
	DiffID v1.Hash `json:"diff_id,omitzero"`
	// Size is the layer's content bytes (see the package doc);
	// CompressedSize the blob's size as stored.
	Size           int64 `json:"size"`
	CompressedSize int64 `json:"compressed_size,omitempty"`
}

// History lists the image's history, newest first, like `docker history`.
// Every layer is read (in parallel) to count its content bytes. Layers
// that no history entry describes (an image without history) get a row
// each with an empty CreatedBy.
func (im *Image) History(ctx context.Context) ([]HistoryEntry, error) {
	layers := im.Layers()
	entries, err := readLayers(ctx, im.store, im.Manifest.Layers, readOptions{})
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", im.Ref, err)
	}
	var rows []HistoryEntry
	n := 0
	for _, h := range im.Config.History {
		row := HistoryEntry{Created: h.Created.Time, CreatedBy: h.CreatedBy, Comment: h.Comment, EmptyLayer: h.EmptyLayer}
		if !h.EmptyLayer && n < len(layers) {
			row = withLayer(row, layers[n], entries[n])
			n++
		}
		rows = append(rows, row)
	}
	for ; n < len(layers); n++ {
		rows = append(rows, withLayer(HistoryEntry{}, layers[n], entries[n]))
	}
	slices.Reverse(rows)
	return rows, nil
}

func withLayer(row HistoryEntry, l Layer, es []entry) HistoryEntry {
	row.Layer = l.Index
	row.Digest = l.Descriptor.Digest
	row.DiffID = l.DiffID
	row.CompressedSize = l.Descriptor.Size
	row.Size = layerBytes(es)
	return row
}
