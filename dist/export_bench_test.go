package dist

// The file transfer's own functions, for the Object Store benchmark to
// measure the path runs and agents take (hash check and atomic write
// included).
var (
	FileBucketForTest = fileBucket
	PutFileForTest    = putFile
	GetFileForTest    = getFile
)
