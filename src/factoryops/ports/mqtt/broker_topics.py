"""Topic names, topic filters and the subscription tree of the embedded broker.

The tree keys each filter level by its text (``+`` and ``#`` are ordinary keys), so matching a
topic walks at most the few branches its levels select: the cost of a publish does not grow with
the number of subscriptions, which matters when thousands of devices each hold their own.
"""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")

SHARE_PREFIX = "$share/"


def valid_topic_name(topic: str) -> bool:
    """A topic a client may publish to: not empty, no wildcard characters."""
    return bool(topic) and "+" not in topic and "#" not in topic


def valid_topic_filter(topic_filter: str) -> bool:
    if not topic_filter:
        return False
    levels = topic_filter.split("/")
    last = len(levels) - 1
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != last):
            return False
        if "+" in level and level != "+":
            return False
    return True


def parse_subscription(topic_filter: str) -> tuple[str | None, str] | None:
    """Split ``$share/<group>/<filter>`` into (group, filter), or (None, filter); None if invalid."""
    if topic_filter.startswith(SHARE_PREFIX):
        group, sep, inner = topic_filter[len(SHARE_PREFIX) :].partition("/")
        if not sep or not group or "+" in group or "#" in group or not valid_topic_filter(inner):
            return None
        return group, inner
    if not valid_topic_filter(topic_filter):
        return None
    return None, topic_filter


def topic_matches(topic_filter: str, topic: str) -> bool:
    """Whether a (non-shared) filter matches a topic name; `$` topics escape first-level wildcards."""
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    filter_levels = topic_filter.split("/")
    topic_levels = topic.split("/")
    for i, level in enumerate(filter_levels):
        if level == "#":
            return True
        if i >= len(topic_levels):
            return False
        if level != "+" and level != topic_levels[i]:
            return False
    return len(filter_levels) == len(topic_levels)


class _Node(Generic[T]):
    __slots__ = ("children", "entries")

    def __init__(self) -> None:
        self.children: dict[str, _Node[T]] = {}
        self.entries: dict[str, T] = {}


class TopicTree(Generic[T]):
    """Entries stored under topic filters, each keyed (by client id or group name) within its filter."""

    def __init__(self) -> None:
        self._root: _Node[T] = _Node()

    def get(self, topic_filter: str, key: str) -> T | None:
        node = self._root
        for level in topic_filter.split("/"):
            child = node.children.get(level)
            if child is None:
                return None
            node = child
        return node.entries.get(key)

    def put(self, topic_filter: str, key: str, value: T) -> None:
        node = self._root
        for level in topic_filter.split("/"):
            child = node.children.get(level)
            if child is None:
                child = node.children[level] = _Node()
            node = child
        node.entries[key] = value

    def remove(self, topic_filter: str, key: str) -> T | None:
        path: list[tuple[_Node[T], str]] = []
        node = self._root
        for level in topic_filter.split("/"):
            child = node.children.get(level)
            if child is None:
                return None
            path.append((node, level))
            node = child
        value = node.entries.pop(key, None)
        # Prune emptied branches so that a churn of device subscriptions does not leave the tree growing.
        for parent, level in reversed(path):
            child = parent.children[level]
            if child.entries or child.children:
                break
            del parent.children[level]
        return value

    def match(self, topic: str) -> list[dict[str, T]]:
        """The entry maps of every filter that matches the topic, each once."""
        levels = topic.split("/")
        depth = len(levels)
        dollar = topic.startswith("$")
        found: list[dict[str, T]] = []
        stack: list[tuple[_Node[T], int]] = [(self._root, 0)]
        while stack:
            node, i = stack.pop()
            children = node.children
            if i == depth:
                if node.entries:
                    found.append(node.entries)
                hash_node = children.get("#")  # "a/#" also matches "a"
                if hash_node is not None and hash_node.entries:
                    found.append(hash_node.entries)
                continue
            if not children:
                continue
            if not (dollar and i == 0):
                hash_node = children.get("#")
                if hash_node is not None and hash_node.entries:
                    found.append(hash_node.entries)
                plus = children.get("+")
                if plus is not None:
                    stack.append((plus, i + 1))
            exact = children.get(levels[i])
            if exact is not None:
                stack.append((exact, i + 1))
        return found
