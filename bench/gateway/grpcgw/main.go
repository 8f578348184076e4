// bench/gateway/grpcgw/main.go: grpc-gateway (Debian's 1.6) as a benchmark peer of meshd
// gateway: an HTTP/JSON front for the bench's meshd.test.Echo backend, built offline by
// bench/gateway/run from Debian's Go packages (GOPATH mode). The handlers are generated into
// echopb/ by protoc-gen-grpc-gateway (built from the same packages) with the route
// POST /meshd.test.Echo/Unary (body "*") given in a grpc_api_configuration file, so the peer
// serves the very requests the meshd gateway is measured with. HTTP/1.1 and h2c (prior
// knowledge) on one port.
//
//	grpcgw -listen 127.0.0.1:PORT -backend 127.0.0.1:PORT
package main

import (
	"context"
	"flag"
	"log"
	"net/http"

	echopb "echogw/echopb"

	"github.com/grpc-ecosystem/grpc-gateway/runtime"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
	"google.golang.org/grpc"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "HTTP address to serve")
	backend := flag.String("backend", "127.0.0.1:50051", "the gRPC echo server")
	flag.Parse()
	mux := runtime.NewServeMux()
	opts := []grpc.DialOption{grpc.WithInsecure()}
	if err := echopb.RegisterEchoHandlerFromEndpoint(context.Background(), mux, *backend, opts); err != nil {
		log.Fatalf("grpcgw: cannot register the echo handlers: %v", err)
	}
	srv := &http.Server{Addr: *listen, Handler: h2c.NewHandler(mux, &http2.Server{})}
	log.Printf("grpcgw: listening on %s, backend %s", *listen, *backend)
	log.Fatal(srv.ListenAndServe())
}
