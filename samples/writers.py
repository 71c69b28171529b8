"""File writers for the sample snapshots: parquet with Hugging Face features metadata, csv, json, dataset cards.

`ROOT` is where snapshots go; make_samples.main() points it at samples/ (or at a scratch folder in tests).
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def features(spec: dict):
    """Features from a compact spec: 'string', 'int64', ['a', 'b'] (ClassLabel names), ('list', 'string'), {struct}."""
    from datasets import ClassLabel, Features, List, Value

    def one(t):
        if isinstance(t, list):
            return ClassLabel(names=t)
        if isinstance(t, tuple):
            return List(one(t[1]))
        if isinstance(t, dict):
            return {k: one(v) for k, v in t.items()}
        return Value(t)

    return Features({k: one(v) for k, v in spec.items()})


def write_parquet(rel: str, rows: list[dict], spec: dict) -> int:
    """Parquet with the `huggingface` schema metadata that push_to_hub and the parquet converter both embed."""
    import pyarrow.parquet as pq
    from datasets import Dataset

    path = ROOT / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    table = Dataset.from_list(rows, features=features(spec)).data.table
    # Keep the `huggingface` features metadata (ClassLabel names), drop pyarrow's bulky ARROW:schema copy.
    with pq.ParquetWriter(path, table.schema, compression="zstd", store_schema=False) as writer:
        writer.add_key_value_metadata({"huggingface": table.schema.metadata[b"huggingface"].decode()})
        writer.write_table(table)
    return table.nbytes


def write_csv(rel: str, rows: list[dict]) -> None:
    path = ROOT / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def write_json(rel: str, rows: list[dict]) -> None:
    """A JSON array of records (what these repos' `.json` files hold; `datasets` also reads JSON Lines)."""
    path = ROOT / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def write_card(
    repo: str, body: str, configs: list[dict] | None = None, infos: list[dict] | None = None, extra: dict | None = None
) -> None:
    """README.md with the YAML front-matter the Hub and `datasets` read (configs, dataset_info, gating)."""
    import yaml

    meta = dict(extra or {})
    if infos:
        meta["dataset_info"] = [
            {
                "config_name": i["config"],
                "features": features(i["spec"])._to_yaml_list(),
                "splits": [{"name": s, "num_bytes": b, "num_examples": n} for s, (n, b) in i["splits"].items()],
            }
            for i in infos
        ]
        if len(infos) == 1 and infos[0]["config"] == "default":
            meta["dataset_info"] = {k: v for k, v in meta["dataset_info"][0].items() if k != "config_name"}
    if configs:
        meta["configs"] = configs
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) if meta else ""
    path = ROOT / repo / "README.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"---\n{front}---\n\n# {repo} (dlm sample)\n\nSynthetic miniature of the real repository: "
        f"same layout, columns and label encodings, invented rows.\n\n{body.strip()}\n",
        encoding="utf-8",
    )


def config(name: str, files: dict[str, str], default: bool = False) -> dict:
    out = {"config_name": name, "data_files": [{"split": s, "path": p} for s, p in files.items()]}
    if default:
        out["default"] = True
    return out


def fake_hash(*parts) -> str:
    return hashlib.md5("/".join(map(str, parts)).encode()).hexdigest()[:16]


class Repo:
    """Collects the splits of one config, writes them, and remembers what the card must declare."""

    def __init__(self, repo: str):
        self.repo, self.configs, self.infos = repo, [], []

    def add(
        self,
        name: str,
        spec: dict,
        splits: dict[str, list[dict]],
        pattern: str = "{config}/{split}-00000-of-00001.parquet",
        default: bool = False,
    ) -> None:
        files, sizes = {}, {}
        for split, rows in splits.items():
            rel = pattern.format(config=name, split=split, hash=fake_hash(self.repo, name, split))
            sizes[split] = (len(rows), write_parquet(f"{self.repo}/{rel}", rows, spec))
            files[split] = rel.split("-00000-of-")[0] + "-*" if "-00000-of-" in rel else rel  # cards use globs
        self.configs.append(config(name, files, default))
        self.infos.append({"config": name, "spec": spec, "splits": sizes})

    def card(self, body: str, extra: dict | None = None) -> None:
        write_card(self.repo, body, self.configs, self.infos, extra)


def export(repo: str, name: str, spec: dict, splits: dict[str, list[dict]], shards: int = 1) -> None:
    """The `refs/convert/parquet` branch layout: <config>/<split>/NNNN.parquet, no README."""
    for split, rows in splits.items():
        size = -(-len(rows) // shards)
        for k in range(shards):
            write_parquet(f"{repo}/{name}/{split}/{k:04d}.parquet", rows[k * size : (k + 1) * size], spec)
