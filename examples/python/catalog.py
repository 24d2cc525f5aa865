"""The service from Python over gRPC, with stubs generated from the exported protos.

    npm run protos:export -- ./artifact-protos
    mkdir -p artifact-py && (cd artifact-protos && protoc -I . --python_out=../artifact-py \
      --grpc_python_out=../artifact-py --plugin=protoc-gen-grpc_python=$(command -v grpc_python_plugin) \
      artifact/v1/*.proto google/api/*.proto)
    ARTIFACT_TOKEN=$(cat data/admin-token) PYTHONPATH=artifact-py \
      python3 examples/python/catalog.py [host:port]

(Debian: protobuf-compiler, protobuf-compiler-grpc, python3-grpcio.) Creates a HOSTED registry →
namespace → repository, lists it back, shows how an error arrives, and deletes what it made.
host:port defaults to localhost:8080; ARTIFACT_TOKEN is an API token of an account that may
create registries, sent with every call as the metadata `authorization: Bearer <token>`.
"""

import os
import random
import string
import sys

import grpc

from artifact.v1 import account_pb2, account_pb2_grpc
from artifact.v1 import namespace_pb2, namespace_pb2_grpc
from artifact.v1 import registry_pb2, registry_pb2_grpc
from artifact.v1 import repository_pb2, repository_pb2_grpc

target = sys.argv[1] if len(sys.argv) > 1 else "localhost:8080"
token = os.environ.get("ARTIFACT_TOKEN")
if not token:
    sys.exit("set ARTIFACT_TOKEN to an API token (the first start writes the admin's to DATA_DIR/admin-token)")
auth = [("authorization", f"Bearer {token}")]

# Both ports speak gRPC over cleartext HTTP/2; use grpc.secure_channel for a TLS listener.
with grpc.insecure_channel(target) as channel:
    accounts = account_pb2_grpc.AccountServiceStub(channel)
    registries = registry_pb2_grpc.RegistryServiceStub(channel)
    namespaces = namespace_pb2_grpc.NamespaceServiceStub(channel)
    repositories = repository_pb2_grpc.RepositoryServiceStub(channel)

    me = accounts.WhoAmI(account_pb2.WhoAmIRequest(), metadata=auth, timeout=10)
    print(f"signed in as {me.account.name}")

    suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=6))
    registry = registries.CreateRegistry(
        registry_pb2.CreateRegistryRequest(
            registry=registry_pb2.Registry(
                name=f"example-py-{suffix}", kind=registry_pb2.REGISTRY_KIND_HOSTED, description="made by examples/python/catalog.py"
            )
        ),
        metadata=auth,
        timeout=10,
    )
    namespace = namespaces.CreateNamespace(
        namespace_pb2.CreateNamespaceRequest(namespace=namespace_pb2.Namespace(registry_id=registry.id, name="team")), metadata=auth, timeout=10
    )
    repository = repositories.CreateRepository(
        repository_pb2.CreateRepositoryRequest(repository=repository_pb2.Repository(namespace_id=namespace.id, name="hello")),
        metadata=auth,
        timeout=10,
    )
    print(f"created {registry.name}/{namespace.name}/{repository.name} ({registry.id})")

    listed = repositories.ListRepositories(repository_pb2.ListRepositoriesRequest(namespace_id=namespace.id), metadata=auth, timeout=10)
    print("repositories: " + ", ".join(r.name for r in listed.repositories))

    # Errors arrive as grpc.RpcError with the service's status code and message.
    try:
        registries.GetRegistry(registry_pb2.GetRegistryRequest(id="00000000-0000-4000-8000-000000000000"), metadata=auth, timeout=10)
    except grpc.RpcError as err:
        print(f"unknown registry: {err.code().name}")

    registries.DeleteRegistry(registry_pb2.DeleteRegistryRequest(id=registry.id, force=True), metadata=auth, timeout=10)
    print(f"deleted {registry.name}")
