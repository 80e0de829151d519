package app

// The blob storage drivers jobgate's binary links besides file://: S3 (and
// S3-compatible stores such as MinIO: s3://bucket?endpoint=…) and Google
// Cloud Storage, whose SDKs the Temporal server links anyway. For Azure Blob
// Storage (azblob://), a custom binary adds
//
//	import _ "gocloud.dev/blob/azureblob"
//
// next to its app.Main call.
import (
	_ "gocloud.dev/blob/gcsblob"
	_ "gocloud.dev/blob/s3blob"
)
