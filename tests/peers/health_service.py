"""tests/peers/health_service.py: grpc.health.v1.Health for grpcio (Check and Watch).

grpcio-health-checking is not packaged on Debian; this serves the standard protocol from the
generated stubs. set() flips a service's status and wakes every Watch stream.
"""
import threading

import grpc

from meshd_pb.grpc.health.v1 import health_pb2, health_pb2_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN


class Health(health_pb2_grpc.HealthServicer):
    def __init__(self, services):
        self._cond = threading.Condition()
        self._status = {s: SERVING for s in list(services) + [""]}
        self._version = 0

    def set(self, service, serving):
        """Set one service's status ("" is the server as a whole)."""
        with self._cond:
            self._status[service] = SERVING if serving else NOT_SERVING
            self._version += 1
            self._cond.notify_all()

    def set_all(self, serving):
        with self._cond:
            for s in self._status:
                self._status[s] = SERVING if serving else NOT_SERVING
            self._version += 1
            self._cond.notify_all()

    def Check(self, request, context):
        with self._cond:
            st = self._status.get(request.service)
        if st is None:
            context.abort(grpc.StatusCode.NOT_FOUND, "unknown service " + request.service)
        return health_pb2.HealthCheckResponse(status=st)

    def Watch(self, request, context):
        last = None
        while context.is_active():
            with self._cond:
                st = self._status.get(request.service, SERVICE_UNKNOWN)
                if st == last:
                    version = self._version
                    self._cond.wait_for(lambda: self._version != version, timeout=1.0)
                    continue
            last = st
            yield health_pb2.HealthCheckResponse(status=st)


def add_to_server(server, services):
    h = Health(services)
    health_pb2_grpc.add_HealthServicer_to_server(h, server)
    return h
