// hello.go - the HTTP "Hello, World!" server of examples/http_hello.c, on
// Go's net/http: the peer of the gort server in this benchmark.
//
//	hello [PORT]   serve on PORT (default 8080) until killed
//
// The response is the same bytes as the gort server's: the Date header that
// net/http adds by default is suppressed, Content-Length and Content-Type are
// set by hand. IdleTimeout drops a connection idle for 60 s, as the gort
// server's read deadline does. GOMAXPROCS comes from the environment.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
	"runtime"
	"time"
)

func main() {
	port := "8080"
	if len(os.Args) > 1 {
		port = os.Args[1]
	}
	body := []byte("Hello, World!")
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Length"] = []string{"13"}
		h["Content-Type"] = []string{"text/plain"}
		h["Date"] = nil
		w.Write(body)
	})
	srv := &http.Server{Addr: ":" + port, Handler: handler, IdleTimeout: 60 * time.Second}
	fmt.Printf("hello: listening on port %s, GOMAXPROCS %d\n", port, runtime.GOMAXPROCS(0))
	log.Fatal(srv.ListenAndServe())
}
