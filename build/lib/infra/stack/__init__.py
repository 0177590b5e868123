"""The local GridLake stack as detached processes.

Kafka (KRaft), HDFS (NameNode + DataNodes) and Redis, each with its own data dir, log
file, pid file and readiness check.

Entry point: :class:`infra.stack.manager.Stack` (``setup``, ``up``, ``down``, ``status``).
"""

from infra.stack.errors import PrerequisiteError, ServiceNotReadyError, StackError

__all__ = ["PrerequisiteError", "ServiceNotReadyError", "StackError"]
