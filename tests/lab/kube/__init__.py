"""The lab's Kubernetes API server stand-in (see ``server.py`` for what it serves and does not model).

``KubeApiServer(clock, request_log, faults, kubernetes_version="1.27.9", platform="eks", ...)`` serves
kubectl, helm, the kubernetes Python client and the kubernetes.core modules over plain HTTP on
127.0.0.1; ``write_kubeconfig(path, server_url, namespace="default")`` writes a kubeconfig for it.
Modules: ``server.py`` (HTTP, discovery, watch, exec, seeding API), ``store.py`` (objects,
resourceVersion, selectors, deletion), ``patch.py`` (the four patch types), ``controllers.py``
(instant controllers), ``resources.py`` (the served types), ``protobuf.py`` (protobuf bodies).
"""
from .server import KubeApiServer, write_kubeconfig

__all__ = ["KubeApiServer", "write_kubeconfig"]
