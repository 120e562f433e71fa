"""The one client every kubelite component uses: REST verbs, informers, work queues, events."""

from kubelite.client.client import Client, ResourceClient
from kubelite.client.controller import Controller
from kubelite.client.events import EventRecorder, object_reference
from kubelite.client.informer import (
    Informer,
    SharedInformerFactory,
    Store,
    index_by_node_name,
    index_by_owner_uid,
    meta_namespace_key,
    split_meta_namespace_key,
)
from kubelite.client.owners import controller_ref, is_controlled_by, new_controller_ref
from kubelite.client.transport import HTTPTransport, InProcessTransport, Transport
from kubelite.client.workqueue import ShutDown, WorkQueue

__all__ = [
    "Client", "ResourceClient", "Transport", "HTTPTransport", "InProcessTransport",
    "SharedInformerFactory", "Informer", "Store", "meta_namespace_key", "split_meta_namespace_key",
    "index_by_node_name", "index_by_owner_uid", "WorkQueue", "ShutDown", "Controller",
    "EventRecorder", "object_reference", "controller_ref", "new_controller_ref", "is_controlled_by",
]
