"""What a request cost in USD, from the usage the API reports and a table of prices.

The prices are data (``pricing.json`` beside this module, each with its source and the
date it was checked) so that a price change is a one-line edit, and a user can correct or
add a model at once with a ``[pricing."MODEL"]`` table in the config without a release.

Costs are computed in exact decimal arithmetic and returned as the nearest float, not
rounded: rounding each request to 6 decimals would turn a 14-token Haiku request into
$0.00002 instead of $0.0000195 and skew every daily total and budget built on it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from typing import Any

import structlog

log = structlog.get_logger(__name__)

PRICE_KEYS = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")

_DATE_SUFFIX = re.compile(r"-\d{8}$")
_MTOK = Decimal(1_000_000)

# Models already reported as unknown: one warning per model per process is enough to be
# noticed, and a batch of 10,000 requests for one unpriced model should not log 10,000.
_warned: set[str] = set()


@dataclass(frozen=True)
class Rates:
    """Standard (non-batch) USD prices per million tokens for one model."""

    input: float
    output: float
    cache_write_5m: float
    cache_write_1h: float
    cache_read: float
    #: Some models bill a whole request at higher rates once its prompt is long enough.
    long_context: LongContext | None = None

    def for_prompt(self, prompt_tokens: int) -> Rates:
        """The rates that apply to a request whose prompt has ``prompt_tokens`` tokens."""
        if self.long_context and prompt_tokens > self.long_context.above_prompt_tokens:
            return self.long_context.rates
        return self


@dataclass(frozen=True)
class LongContext:
    """Rates for every token of a request whose prompt (input + cache writes + cache
    reads) is over ``above_prompt_tokens``: Sonnet 4/4.5 above 200K, Haiku 5.5 above 100K."""

    above_prompt_tokens: int
    rates: Rates


def _rates(entry: Mapping[str, Any]) -> Rates:
    long = entry.get("long_context")
    return Rates(
        *(float(entry[k]) for k in PRICE_KEYS),
        long_context=LongContext(int(long["above_prompt_tokens"]), _rates(long)) if long else None,
    )


def _tokens(value: Any) -> int:
    return int(value or 0)


def _d(price: float) -> Decimal:
    # repr() gives the shortest decimal that round-trips, so 0.1 becomes exactly 0.1.
    return Decimal(repr(price))


class Pricing:
    """The price table with the config's overrides on top."""

    def __init__(
        self,
        table: Mapping[str, Rates],
        names: Mapping[str, tuple[str, ...]],
        overrides: Mapping[str, Rates],
        batch_discount: float,
    ) -> None:
        self._table = dict(table)
        self._names = dict(names)
        self._overrides = dict(overrides)
        self.batch_discount = batch_discount
        # Every alias and dated id, pointing at its table key.
        self._index = {name: key for key, all_names in self._names.items() for name in (key, *all_names)}

    @classmethod
    def load(cls, overrides: dict[str, dict[str, float]] | None = None) -> Pricing:
        """Read the packaged table and apply ``[pricing."MODEL"]`` overrides.

        An override needs ``input`` and ``output``; missing cache prices are derived from
        its input with the published multipliers (5m write 1.25x, 1h write 2x, read 0.1x).
        """
        data = json.loads(resources.files("batchd").joinpath("pricing.json").read_text("utf-8"))
        multipliers = data["cache_multipliers"]
        table = {key: _rates(entry) for key, entry in data["models"].items()}
        names = {key: (*entry["ids"], *entry["aliases"]) for key, entry in data["models"].items()}
        custom = {}
        for model, prices in (overrides or {}).items():
            missing = [k for k in ("input", "output") if k not in prices]
            if missing:
                raise ValueError(f"pricing.{model} needs {' and '.join(missing)}")
            base = float(prices["input"])
            custom[model] = Rates(
                input=base,
                output=float(prices["output"]),
                **{
                    k: float(prices[k]) if k in prices else float(_d(base) * _d(multipliers[k]))
                    for k in ("cache_write_5m", "cache_write_1h", "cache_read")
                },
            )
        return cls(table, names, custom, float(data["batch_discount"]))

    def rates(self, model: str) -> Rates | None:
        """The prices for a model id or alias, or None when it has none.

        An override given for any name of a model (its alias, a dated id) applies to all
        its names, since requests name the alias but results report the dated id.
        """
        names = [model]
        undated = _DATE_SUFFIX.sub("", model)
        if undated != model:
            names.append(undated)
        key = next((self._index[n] for n in names if n in self._index), None)
        if key is not None:
            names += [key, *self._names[key]]
        for name in names:
            if name in self._overrides:
                return self._overrides[name]
        return self._table[key] if key is not None else None

    def cost(self, model: str, usage: Mapping[str, Any] | Any, *, batch: bool = True) -> float | None:
        """USD cost of one request from its Message ``usage``; None when the model has no price.

        ``batch`` applies the Batch API discount to every part, cache writes and reads
        included (the cache multipliers stack with it). Missing or None counts are 0.
        """
        rates = self.rates(model)
        if rates is None:
            if model not in _warned:
                _warned.add(model)
                log.warning("price_unknown", model=model)
            return None
        if hasattr(usage, "model_dump"):  # an SDK Usage object
            usage = usage.model_dump()
        split = usage.get("cache_creation") or {}
        write_1h = _tokens(split.get("ephemeral_1h_input_tokens"))
        writes = max(
            _tokens(usage.get("cache_creation_input_tokens")),
            write_1h + _tokens(split.get("ephemeral_5m_input_tokens")),
        )
        input_tokens = _tokens(usage.get("input_tokens"))
        reads = _tokens(usage.get("cache_read_input_tokens"))
        rates = rates.for_prompt(input_tokens + writes + reads)
        total = (
            input_tokens * _d(rates.input)
            + _tokens(usage.get("output_tokens")) * _d(rates.output)
            + (writes - write_1h) * _d(rates.cache_write_5m)
            + write_1h * _d(rates.cache_write_1h)
            + reads * _d(rates.cache_read)
        ) / _MTOK
        if batch:
            total *= _d(self.batch_discount)
        return float(total)

    def realtime_cost(self, model: str, usage: Mapping[str, Any] | Any) -> float | None:
        """What the same request would have cost outside a batch, for "saved" figures."""
        return self.cost(model, usage, batch=False)
