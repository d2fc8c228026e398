//go:build !((linux || darwin) && (amd64 || arm64))

package turbojpeg

import "errors"

func openLibrary() (*library, error) {
	return nil, errors.New("loading libjpeg-turbo is supported on linux and darwin, amd64 and arm64 only")
}

func libraryVersion(*library) string { return "" }
