// spdyclient drives berth's streaming server with docker/spdystream, the SPDY library under
// kubectl's and crictl's streaming code, the way client-go does: the upstream half of berth's
// SPDY interoperability test (StreamingInteropTest in tests/integration/streaming_test.cc).
//
//	spdyclient exec URL STDIN_TEXT   exec or attach: prints stdout, stderr and the status
//	spdyclient forward URL PORT      sends an HTTP/1.0 GET through the forward, prints the reply
package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/docker/spdystream"
)

func die(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

// upgrade opens a SPDY session on rawURL offering one protocol, as client-go's round tripper does.
func upgrade(rawURL, protocol string) *spdystream.Connection {
	u, err := url.Parse(rawURL)
	if err != nil {
		die("url: %v", err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
	if err != nil {
		die("dial: %v", err)
	}
	req, _ := http.NewRequest("POST", rawURL, nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "SPDY/3.1")
	req.Header.Add("X-Stream-Protocol-Version", protocol)
	if err := req.Write(conn); err != nil {
		die("write request: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		die("read response: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		die("upgrade refused: %s", resp.Status)
	}
	if got := resp.Header.Get("X-Stream-Protocol-Version"); got != protocol {
		die("negotiated %q, want %q", got, protocol)
	}
	sc, err := spdystream.NewConnection(conn, false)
	if err != nil {
		die("spdy: %v", err)
	}
	go sc.Serve(spdystream.NoOpStreamHandler)
	return sc
}

func stream(sc *spdystream.Connection, headers http.Header) *spdystream.Stream {
	s, err := sc.CreateStream(headers, nil, false)
	if err != nil {
		die("create stream %v: %v", headers, err)
	}
	if err := s.WaitTimeout(10 * time.Second); err != nil {
		die("no reply to stream %v: %v", headers, err)
	}
	return s
}

func typed(t string) http.Header {
	h := http.Header{}
	h.Set("streamtype", t)
	return h
}

func exec(rawURL, input string) {
	sc := upgrade(rawURL, "v4.channel.k8s.io")
	errStream := stream(sc, typed("error"))
	stdin := stream(sc, typed("stdin"))
	stdout := stream(sc, typed("stdout"))
	stderr := stream(sc, typed("stderr"))
	// A keep-alive ping, as client-go's pinger sends every few seconds.
	if _, err := sc.Ping(); err != nil {
		die("ping: %v", err)
	}
	go func() {
		stdin.Write([]byte(input))
		stdin.Close()
	}()
	var wg sync.WaitGroup
	var out, errOut, status []byte
	wg.Add(3)
	go func() { defer wg.Done(); out, _ = io.ReadAll(stdout) }()
	go func() { defer wg.Done(); errOut, _ = io.ReadAll(stderr) }()
	go func() { defer wg.Done(); status, _ = io.ReadAll(errStream) }()
	wg.Wait()
	fmt.Printf("stdout=%q\nstderr=%q\nstatus=%s\n", out, errOut, status)
}

func forward(rawURL, port string) {
	if _, err := strconv.Atoi(port); err != nil {
		die("port: %v", err)
	}
	sc := upgrade(rawURL, "portforward.k8s.io")
	h := http.Header{}
	h.Set("streamtype", "error")
	h.Set("port", port)
	h.Set("requestID", "0")
	errStream := stream(sc, h)
	errStream.Close() // client-go half-closes the error stream at once
	h.Set("streamtype", "data")
	data := stream(sc, h)
	if _, err := data.Write([]byte("GET / HTTP/1.0\r\n\r\n")); err != nil {
		die("write: %v", err)
	}
	reply, _ := io.ReadAll(data)
	problem, _ := io.ReadAll(errStream)
	fmt.Printf("reply=%q\nerror=%q\n", reply, problem)
}

func main() {
	if len(os.Args) != 4 {
		die("usage: spdyclient exec URL STDIN | spdyclient forward URL PORT")
	}
	switch os.Args[1] {
	case "exec":
		exec(os.Args[2], os.Args[3])
	case "forward":
		forward(os.Args[2], os.Args[3])
	default:
		die("unknown mode %q", os.Args[1])
	}
}
