// echo.go - the TCP echo server of examples/echo_server.c, on Go's net: the
// peer of the gort server in this benchmark, step for step.
//
//	echo [PORT]   serve on PORT (default 7007) until killed
//
// One goroutine accepts; each connection gets a goroutine that sets a 60 s
// read deadline, reads up to 16 KiB and writes back what it read, until EOF,
// an error or the deadline. GOMAXPROCS comes from the environment.
package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"syscall"
	"time"
)

func serveConn(c net.Conn) {
	buf := make([]byte, 16384)
	for {
		c.SetReadDeadline(time.Now().Add(60 * time.Second))
		n, err := c.Read(buf)
		if n <= 0 || err != nil { // EOF, a reset or the idle deadline
			break
		}
		if m, err := c.Write(buf[:n]); m != n || err != nil {
			break
		}
	}
	c.Close()
}

func main() {
	port := "7007"
	if len(os.Args) > 1 {
		port = os.Args[1]
	}
	ln, err := net.Listen("tcp", ":"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo: listen:", err)
		os.Exit(1)
	}
	fmt.Printf("echo: listening on port %s, GOMAXPROCS %d\n", port, runtime.GOMAXPROCS(0))
	for {
		c, err := ln.Accept()
		if err == nil {
			go serveConn(c)
		} else if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
			time.Sleep(10 * time.Millisecond) // out of fds: back off, as net/http does
		} else {
			fmt.Fprintln(os.Stderr, "echo: accept:", err)
			return
		}
	}
}
