"""OCA channel configuration, per runner, and the claim buckets it yields.

Syntax (OCA's): ``channel(.sub)*(:capacity(:key(=value)?)*)?`` separated by
commas or newlines; ``sub:2`` is ``root.sub:2``; capacity defaults to 1;
capacity 0 on a subchannel means unlimited; root is ``root:1`` unless
configured. A job uses capacity in its channel and every ancestor; a channel
that is not configured falls under its closest configured ancestor.

Capacity here bounds what *this runner* runs at once (node capacity).
Options that must hold across runners (sequential, throttle, global) are
parsed and kept for the database-side limits.
"""

from dataclasses import dataclass, field

from .plan import build_buckets, normalize_channel
from .errors import ConfigError

SYNTAX = "expected channel(.sub)*[:capacity[:key[=value]]...] separated by commas or newlines"


@dataclass
class Channel:
    name: str  # full name: root.sub
    capacity: int | None  # None: unlimited
    parent: int | None  # index in ChannelTree.channels
    options: dict = field(default_factory=dict)

    @property
    def sequential(self):
        return bool(self.options.get("sequential"))

    @property
    def throttle(self):
        return int(self.options.get("throttle") or 0)

    @property
    def isolated(self):
        """Its running jobs count against it and its subchannels only, not
        its ancestors: long jobs keep root's capacity whole."""
        return bool(self.options.get("isolated"))


# our options, and queue_job 18.0's (accepted so that one string serves both)
OPTIONS = ("global", "isolated", "sequential", "throttle", "capacity_default",
           "sequential_default", "paused")


def _parse_entries(text):
    entries = []
    for raw in text.replace("\n", ",").split(","):
        raw = raw.strip()
        if not raw or raw.startswith("#"):
            continue
        items = [i.strip() for i in raw.split(":")]
        name = items[0]
        if not name:
            raise ConfigError(f"invalid channels value {text!r}: missing channel name in {raw!r}; {SYNTAX}")
        if any(not part for part in name.split(".")):
            raise ConfigError(f"invalid channels value {text!r}: bad channel name {name!r}; {SYNTAX}")
        capacity = 1
        if len(items) > 1:
            try:
                capacity = int(items[1])
            except ValueError:
                raise ConfigError(
                    f"invalid channels value {text!r}: capacity {items[1]!r} of {name!r} "
                    f"is not an integer; {SYNTAX}") from None
            if capacity < 0:
                raise ConfigError(f"invalid channels value {text!r}: capacity of {name!r} is negative")
        options = {}
        for item in items[2:]:
            key, sep, value = (p.strip() for p in item.partition("="))
            if not key:
                raise ConfigError(f"invalid channels value {text!r}: empty option in {raw!r}; {SYNTAX}")
            if key not in OPTIONS:
                raise ConfigError(f"invalid channels value {text!r}: unknown option {key!r} of "
                                  f"{name!r}; use {', '.join(OPTIONS)}")
            options[key] = value if sep else True
        if "throttle" in options:
            raw = options["throttle"]
            try:
                options["throttle"] = int(raw)
                if options["throttle"] < 0:
                    raise ValueError
            except (TypeError, ValueError):
                raise ConfigError(
                    f"invalid channels value {text!r}: throttle {raw!r} of {name!r} "
                    "must be a whole number of seconds >= 0") from None
        if options.get("isolated") and (normalize_channel(name) == "root" or capacity < 1):
            raise ConfigError(f"invalid channels value {text!r}: isolated channel {name!r} needs "
                              "a capacity of its own (e.g. root.long:2:isolated), and root cannot be one")
        if options.get("sequential") and capacity != 1:
            raise ConfigError(
                f"invalid channels value {text!r}: sequential channel {name!r} must have capacity 1")
        entries.append((normalize_channel(name), capacity, options))
    return entries


class ChannelTree:
    """The configured channels of one runner; index 0 is root."""

    def __init__(self, text="root:1"):
        self.text = text
        self.channels = [Channel("root", 1, None)]
        self._index = {"root": 0}
        for name, capacity, options in _parse_entries(text):
            idx = self._ensure(name)
            ch = self.channels[idx]
            # OCA: 0 means unlimited, except root:0 which disables the runner
            ch.capacity = capacity if (capacity or idx == 0) else None
            ch.options = options
        self._chains = [self._chain(i) for i in range(len(self.channels))]

    def _ensure(self, name):
        if name in self._index:
            return self._index[name]
        parent_name = name.rsplit(".", 1)[0]
        parent = self._ensure(parent_name)
        # intermediate channels that are not configured are unlimited (OCA)
        self.channels.append(Channel(name, None, parent))
        self._index[name] = len(self.channels) - 1
        return self._index[name]

    def _chain(self, idx):
        """The channels a job of channel idx uses capacity of: itself and
        its ancestors, up to the first isolated one."""
        chain = []
        while idx is not None:
            chain.append(idx)
            idx = None if self.channels[idx].isolated else self.channels[idx].parent
        return chain

    @property
    def isolated(self):
        return [ch.name for ch in self.channels if ch.isolated]

    def free_total(self, frees):
        """What one claim may take: root's free capacity plus each isolated
        channel's, which root does not bound."""
        return frees[0] + sum(frees[i] or 0 for i, ch in enumerate(self.channels) if ch.isolated)

    @property
    def root_capacity(self):
        """The most jobs this runner runs at once outside isolated channels."""
        return self.channels[0].capacity

    @property
    def total_capacity(self):
        """The most jobs this runner runs at once: root's and every isolated
        channel's."""
        return self.free_total([ch.capacity for ch in self.channels])

    def bucket_of(self, channel_name):
        """Index of the closest configured ancestor of a job's channel."""
        name = normalize_channel(channel_name)
        while name not in self._index:
            name = name.rsplit(".", 1)[0]
        return self._index[name]

    def chain(self, idx):
        return self._chains[idx]

    def buckets(self, running):
        """Claim buckets given running[i] = jobs in flight in channel i's subtree.

        Returns (buckets, total free capacity of root).
        """
        frees = self.node_frees(running)
        return (build_buckets([ch.name for ch in self.channels], frees, stops=self.isolated),
                self.free_total(frees))

    def node_frees(self, running):
        """Free capacity of each configured channel (None: unlimited)."""
        return [None if ch.capacity is None else max(0, ch.capacity - busy)
                for ch, busy in zip(self.channels, running)]

    def count_running(self, bucket_indexes, running=None):
        """running[] for buckets(), from the bucket index of each job in
        flight; added to `running` in place when given."""
        running = [0] * len(self.channels) if running is None else running
        for b in bucket_indexes:
            for j in self._chains[b]:
                running[j] += 1
        return running


def parse_channels(text):
    if text is None or not str(text).strip():
        raise ConfigError("invalid channels value '': give at least root:N (e.g. root:4)")
    tree = ChannelTree(str(text))
    if tree.root_capacity is None or tree.root_capacity < 0:
        raise ConfigError(f"invalid channels value {text!r}: root needs a capacity (e.g. root:4)")
    return tree
