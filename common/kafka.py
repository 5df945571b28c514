"""Kafka client configuration, topic administration and the ACLs, shared by the relay, consumers, health and infra.

Every client's configuration starts from `client_config`: the bootstrap address and who the client is
(common/kafka_auth.py). A Django process is its service's principal (settings.KAFKA_SECURITY); tools pass
`principal=ADMIN`.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from common import kafka_auth, namespace, topics
from common.kafka_auth import ADMIN
from common.topics import all_topics

# Every principal of the local broker but the admin: the services, and common/'s test project.
PRINCIPALS = [*topics.CONSUMES, "platform_common"]


def bootstrap_servers() -> str:
    from django.conf import settings

    return settings.KAFKA_BOOTSTRAP_SERVERS


def client_config(bootstrap: str | None = None, *, principal: str | None = None, **overrides: Any) -> dict[str, Any]:
    """A client's base configuration: the bootstrap address (default: the settings') and its identity (default:
    this service's principal, from the settings; ADMIN for tools)."""
    if principal is None:
        from django.conf import settings

        security = settings.KAFKA_SECURITY
    else:
        security = kafka_auth.admin_config() if principal == ADMIN else kafka_auth.security_config(principal)
    return {"bootstrap.servers": bootstrap or bootstrap_servers(), **security, **overrides}


def admin_client(bootstrap: str, **overrides: Any) -> AdminClient:
    """An AdminClient acting as the broker's admin (topics, ACLs, users, consumer groups)."""
    return AdminClient(client_config(bootstrap, principal=ADMIN, **overrides))


def producer_config(bootstrap: str, *, principal: str | None = None, **overrides: Any) -> dict[str, Any]:
    """An idempotent producer: acks=all, no reordering or duplicates on retry within a partition."""
    return {
        **client_config(bootstrap, principal=principal),
        "enable.idempotence": True,
        "acks": "all",
        # 1 ms, not 5: at our rates a commit brings a handful of events, and the relay hands the producer whole
        # batches (thousands of rows per pass) anyway, so waiting longer to fill a batch only adds latency to
        # the order path (POST to NEW crosses the relay twice).
        "linger.ms": 1,
        "compression.type": "lz4",
        **overrides,
    }


def ensure_topics(bootstrap: str, topics: list[str], *, partitions: int, timeout: float = 30.0) -> list[str]:
    """Create the topics that do not exist yet; return the names created. Waits for the broker."""
    admin = admin_client(bootstrap)
    deadline = time.monotonic() + timeout
    while True:
        try:
            existing = set(admin.list_topics(timeout=5).topics)
            break
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    missing = [t for t in topics if t not in existing]
    if not missing:
        return []
    futures = admin.create_topics(
        [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in missing], operation_timeout=30
    )
    for name, future in futures.items():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].code() != exc.args[0].TOPIC_ALREADY_EXISTS:
                raise
            missing.remove(name)
    return missing


def delete_namespace_topics(bootstrap: str, ns: str, *, timeout: float = 30.0) -> list[str]:
    """Delete every topic of a run namespace (its platform topics and whatever its tests created)."""
    if not namespace.validate(ns):
        raise ValueError("the real platform's topics (empty namespace) are never deleted")
    admin = admin_client(bootstrap)
    doomed = sorted(t for t in admin.list_topics(timeout=timeout).topics if t.startswith(f"{ns}."))
    if doomed:
        for future in admin.delete_topics(doomed, operation_timeout=timeout).values():
            try:
                future.result()
            except KafkaException as exc:
                if exc.args[0].code() != exc.args[0].UNKNOWN_TOPIC_OR_PART:
                    raise
    return doomed


def ensure_principals(bootstrap: str, *, timeout: float = 30.0) -> None:
    """Give every principal its SCRAM credential (kafka_auth.principal_password: the environment's, or the local
    secret in .run/secrets/kafka/, made on first use)."""
    upserts = [
        UserScramCredentialUpsertion(
            name,
            ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192),
            kafka_auth.principal_password(name).encode(),
        )
        for name in PRINCIPALS
    ]
    admin = admin_client(bootstrap)  # kept while its futures run: a collected client cancels them
    for future in admin.alter_user_scram_credentials(upserts, request_timeout=timeout).values():
        future.result()


def acl_bindings(ns: str) -> list[AclBinding]:
    """Every ACL of a namespace's topics and groups ("" the real platform's), from the tables in common/topics.py.

    A service may write the topics it owns and the dead-letter topics of those it consumes, read the topics it
    consumes, use its own consumer groups (`<service>.<consumer>`), and use its run's scratch topics.
    """
    bindings: list[AclBinding] = []
    seen: set[tuple] = set()

    def allow(kind: ResourceType, pattern: ResourcePatternType, name: str, principal: str, *ops: AclOperation):
        for op in ops:
            if (kind, name, pattern, principal, op) in seen:
                continue  # a topic both written and read (the feed's market-data): DESCRIBE once
            seen.add((kind, name, pattern, principal, op))
            bindings.append(AclBinding(kind, name, pattern, f"User:{principal}", "*", op, AclPermissionType.ALLOW))

    literal, prefixed = ResourcePatternType.LITERAL, ResourcePatternType.PREFIXED
    write, read, describe = AclOperation.WRITE, AclOperation.READ, AclOperation.DESCRIBE
    for principal in PRINCIPALS:
        grants = [
            *((ResourceType.TOPIC, literal, t, (write, describe)) for t in topics.produces(principal)),
            *((ResourceType.TOPIC, literal, t, (read, describe)) for t in topics.consumes(principal)),
            *((ResourceType.TOPIC, prefixed, p, (read, write, describe)) for p in topics.SCRATCH_PREFIXES),
        ]
        for kind, pattern, topic, ops in grants:
            allow(kind, pattern, namespace.topic(topic, ns), principal, *ops)
        allow(ResourceType.GROUP, prefixed, namespace.group(f"{principal}.", ns), principal, read, describe)
    return bindings


def ensure_acls(bootstrap: str, ns: str, *, timeout: float = 30.0) -> int:
    """Write the namespace's ACLs (creating one that exists is a no-op on the broker); returns how many."""
    bindings = acl_bindings(ns)
    admin = admin_client(bootstrap)
    for future in admin.create_acls(bindings, request_timeout=timeout).values():
        future.result()
    return len(bindings)


def delete_acls(bootstrap: str, ns: str, *, timeout: float = 30.0) -> None:
    """Remove a run namespace's ACLs (never the real platform's)."""
    if not namespace.validate(ns):
        raise ValueError("the real platform's ACLs (empty namespace) are never deleted")
    filters = [
        AclBindingFilter(
            b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation, b.permission_type
        )
        for b in acl_bindings(ns)
    ]
    admin = admin_client(bootstrap)
    for future in admin.delete_acls(filters, request_timeout=timeout).values():
        future.result()


def ensure_namespace(bootstrap: str, ns: str, *, partitions: int, timeout: float = 60.0) -> list[str]:
    """A namespace's topics and ACLs, and every principal's credential; returns the topics created."""
    created = ensure_topics(
        bootstrap, [namespace.topic(t, ns) for t in all_topics()], partitions=partitions, timeout=timeout
    )
    ensure_principals(bootstrap, timeout=timeout)
    ensure_acls(bootstrap, ns, timeout=timeout)
    return created


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Create (or delete) a namespace's Kafka topics, users and ACLs.")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--namespace", default=None, help="default: PLATFORM_NAMESPACE (empty: the real platform)")
    parser.add_argument("--delete", action="store_true", help="delete the namespace's topics and ACLs instead")
    args = parser.parse_args(argv)
    ns = namespace.current() if args.namespace is None else namespace.validate(args.namespace)
    try:
        if args.delete:
            deleted = delete_namespace_topics(args.bootstrap, ns, timeout=args.timeout)
            delete_acls(args.bootstrap, ns, timeout=args.timeout)
            print(f"topics of namespace {ns} deleted ({len(deleted)}), and its ACLs")
            return 0
        created = ensure_namespace(args.bootstrap, ns, partitions=args.partitions, timeout=args.timeout)
    except (KafkaException, ValueError) as exc:
        print(f"could not manage topics on {args.bootstrap}: {exc}", file=sys.stderr)
        return 1
    where = f" in namespace {ns}" if ns else ""
    print(
        f"topics ready ({len(all_topics())}{where}; created {len(created)}); users and ACLs of {len(PRINCIPALS)} "
        "principals set"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
