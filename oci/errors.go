package oci

import "errors"

// Sentinel errors callers branch on with [errors.Is]. Every error the store
// returns wraps one of these when the condition applies, with the object
// named in the message.
var (
	// ErrNotFound: the blob, image, tag or snapshot is not in the store, or
	// a blob an input refers to is missing from that input.
	ErrNotFound = errors.New("not found")
	// ErrDigestMismatch: bytes do not hash to the digest they claim.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrSizeMismatch: a blob does not have the size its descriptor claims.
	ErrSizeMismatch = errors.New("size mismatch")
	// ErrUnsupported: a media type, digest algorithm, layout version or
	// archive format the store does not handle, or a platform without the
	// Linux system calls the store needs.
	ErrUnsupported = errors.New("unsupported")
	// ErrInvalid: malformed input: a name that is not an image reference, a
	// manifest that does not parse, a descriptor that contradicts its blob.
	ErrInvalid = errors.New("invalid")
	// ErrAmbiguous: a short digest prefix matches more than one image.
	ErrAmbiguous = errors.New("ambiguous reference")
)
