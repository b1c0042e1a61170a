// Real gzip sizes as `docker push` writes them, for checking mlsize's
// estimate (error.py): moby's distribution.compress gzips an uncompressed
// layer with Go's compress/gzip NewWriter (DefaultCompression, level 6).
// Prints one size per FILE:OFFSET:LEN range.
//
//	go run gosize.go FILE:OFFSET:LEN ...
package main

import (
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
)

type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

func size(spec string) (int64, error) {
	i := strings.LastIndex(spec, ":")
	j := strings.LastIndex(spec[:i], ":")
	length, err := strconv.ParseInt(spec[i+1:], 10, 64)
	if err != nil {
		return 0, err
	}
	offset, err := strconv.ParseInt(spec[j+1:i], 10, 64)
	if err != nil {
		return 0, err
	}
	f, err := os.Open(spec[:j])
	if err != nil {
		return 0, err
	}
	defer f.Close()
	c := &counter{}
	w := gzip.NewWriter(c)
	if _, err := io.Copy(w, io.NewSectionReader(f, offset, length)); err != nil {
		return 0, err
	}
	if err := w.Close(); err != nil {
		return 0, err
	}
	return c.n, nil
}

func main() {
	specs := os.Args[1:]
	out := make([]string, len(specs))
	var wg sync.WaitGroup
	for k, s := range specs {
		wg.Add(1)
		go func(k int, s string) {
			defer wg.Done()
			n, err := size(s)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			out[k] = fmt.Sprintf("%d\t%s", n, s)
		}(k, s)
	}
	wg.Wait()
	for _, l := range out {
		fmt.Println(l)
	}
}
