package cache

import (
	"fmt"
	"io"
)

// WriteKeyMaterial writes everything a step's key is derived from, for a
// debug flag: the key, the exact canonical bytes hashed, and for each
// context input its listing as [WriteListing] prints it (when files can
// load it). Diffing this output between two builds shows why a key
// changed.
func WriteKeyMaterial(w io.Writer, p Parts, files ListingSource) error {
	if _, err := fmt.Fprintf(w, "key %s\n%s\n", p.Key(), p.Canonical()); err != nil {
		return fmt.Errorf("write key material: %w", err)
	}
	for _, in := range p.Normalize().Inputs {
		if in.Kind != InputContext {
			continue
		}
		if _, err := fmt.Fprintf(w, "input %s %q %s:\n", in.Kind, in.Name, in.Digest); err != nil {
			return fmt.Errorf("write key material: %w", err)
		}
		listing, found := loadListing(files, in.Digest)
		if !found {
			if _, err := fmt.Fprintln(w, "  (listing not stored)"); err != nil {
				return fmt.Errorf("write key material: %w", err)
			}
			continue
		}
		if err := WriteListing(w, listing); err != nil {
			return err
		}
	}
	return nil
}
