"""tests/peers/reflection_service.py: gRPC server reflection (v1alpha and v1) for grpcio.

grpcio-reflection is not packaged on Debian, so this implements grpc.reflection.*.
ServerReflection from the generated stubs, answering from protobuf's default descriptor
pool (every generated *_pb2 module registers its file there).
"""
import grpc
from google.protobuf import descriptor_pool

from meshd_pb.grpc.reflection.v1 import reflection_pb2 as v1_pb2
from meshd_pb.grpc.reflection.v1 import reflection_pb2_grpc as v1_grpc
from meshd_pb.grpc.reflection.v1alpha import reflection_pb2 as v1alpha_pb2
from meshd_pb.grpc.reflection.v1alpha import reflection_pb2_grpc as v1alpha_grpc

NOT_FOUND = grpc.StatusCode.NOT_FOUND.value[0]
UNIMPLEMENTED = grpc.StatusCode.UNIMPLEMENTED.value[0]


def _with_dependencies(fd):
    """Serialized FileDescriptorProtos of fd and everything it imports, fd first."""
    out, seen, todo = [], set(), [fd]
    while todo:
        f = todo.pop(0)
        if f.name in seen:
            continue
        seen.add(f.name)
        out.append(f.serialized_pb)
        todo.extend(f.dependencies)
    return out


class _Reflection:
    """One implementation, parametrized by the version's generated message module."""

    def __init__(self, pb2, service_names):
        self._pb2 = pb2
        self._services = sorted(service_names)
        self._pool = descriptor_pool.Default()

    def _answer(self, req):
        pb2 = self._pb2
        resp = pb2.ServerReflectionResponse(valid_host=req.host, original_request=req)
        kind = req.WhichOneof("message_request")
        try:
            if kind == "list_services":
                resp.list_services_response.service.extend(
                    pb2.ServiceResponse(name=n) for n in self._services)
            elif kind == "file_by_filename":
                fd = self._pool.FindFileByName(req.file_by_filename)
                resp.file_descriptor_response.file_descriptor_proto.extend(_with_dependencies(fd))
            elif kind == "file_containing_symbol":
                fd = self._pool.FindFileContainingSymbol(req.file_containing_symbol)
                resp.file_descriptor_response.file_descriptor_proto.extend(_with_dependencies(fd))
            elif kind == "file_containing_extension":
                ext = req.file_containing_extension
                msg = self._pool.FindMessageTypeByName(ext.containing_type)
                fd = self._pool.FindExtensionByNumber(msg, ext.extension_number).file
                resp.file_descriptor_response.file_descriptor_proto.extend(_with_dependencies(fd))
            elif kind == "all_extension_numbers_of_type":
                msg = self._pool.FindMessageTypeByName(req.all_extension_numbers_of_type)
                resp.all_extension_numbers_response.base_type_name = msg.full_name
                resp.all_extension_numbers_response.extension_number.extend(
                    sorted(e.number for e in self._pool.FindAllExtensions(msg)))
            else:
                resp.error_response.error_code = UNIMPLEMENTED
                resp.error_response.error_message = "unknown reflection request"
        except KeyError as e:
            resp.ClearField("message_response")
            resp.error_response.error_code = NOT_FOUND
            resp.error_response.error_message = "not found: %s" % e
        return resp

    def ServerReflectionInfo(self, request_iterator, context):
        for req in request_iterator:
            yield self._answer(req)


class _V1(_Reflection, v1_grpc.ServerReflectionServicer):
    pass


class _V1Alpha(_Reflection, v1alpha_grpc.ServerReflectionServicer):
    pass


V1_NAME = "grpc.reflection.v1.ServerReflection"
V1ALPHA_NAME = "grpc.reflection.v1alpha.ServerReflection"


def add_to_server(server, service_names):
    """Serve both reflection versions; service_names lists the other services served."""
    names = set(service_names) | {V1_NAME, V1ALPHA_NAME}
    v1_grpc.add_ServerReflectionServicer_to_server(_V1(v1_pb2, names), server)
    v1alpha_grpc.add_ServerReflectionServicer_to_server(_V1Alpha(v1alpha_pb2, names), server)
