"""tests/integration/lib/serve.py: the end of a test's own gRPC server process (the shop,
probe and retry servers): serve on loopback, say the port, run until SIGTERM or SIGINT."""
import signal
import threading


def serve(server, port):
    """Serves server on 127.0.0.1:port (0: a free one), prints "listening on PORT" (what
    Proc.wait_line waits for) and returns once SIGTERM or SIGINT stopped it."""
    port = server.add_insecure_port("127.0.0.1:%d" % port)
    server.start()
    print("listening on %d" % port, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: done.set())
    signal.signal(signal.SIGINT, lambda *a: done.set())
    while not done.wait(0.5):
        pass
    server.stop(0)
