"""Message and table contracts, defined once."""

from lakehouse.contracts.schema import Field, FieldType, MessageContract, TableContract, TopicSpec

__all__ = ["Field", "FieldType", "MessageContract", "TableContract", "TopicSpec"]
