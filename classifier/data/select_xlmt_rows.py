"""Which xlm-t rows to read for urgency labels (fr/es/it): a fixed-seed choice, no labels.

Prints `dataset,row` lines: per language, 50 rows whose text has a service or complaint word in
that language and 100 rows at random from the rest (seed 4). A person then reads each tweet and
gives its tier by `URGENCY_GUIDE.md`; this script only decides which rows are read.

    .venv/bin/python classifier/data/select_xlmt_rows.py [--data-root ../shared/data]
"""

from __future__ import annotations

import argparse
import random
import re
from pathlib import Path

SERVICE_WORDS = {
    "french": r"commande|rembours|colis|livraison|service client|appli|compte|banque|facture|"
    r"panne|retard|annul|train|vol\b|sncf|orange|free|sfr|bouygues|amazon|réseau|client",
    "spanish": r"pedido|reembols|paquete|env[ií]o|atenci[oó]n al cliente|app|cuenta|banco|factura|"
    r"aver[ií]a|retras|cancel|vuelo|renfe|movistar|vodafone|amazon|iberia|cliente|servicio",
    "italian": r"ordine|rimbors|pacco|spedizion|servizio clienti|app|conto|banca|bolletta|"
    r"guasto|ritard|cancell|volo|trenitalia|tim\b|vodafone|amazon|alitalia|cliente|servizio",
}
PER_LANGUAGE_MATCHED = 50
PER_LANGUAGE_RANDOM = 100


def select(data_root: Path) -> list[tuple[str, int]]:
    chosen: list[tuple[str, int]] = []
    for language, words in SERVICE_WORDS.items():
        dataset = f"xlm-t-umsab/{language}"
        lines = (data_root / dataset / "train_text.txt").read_text(encoding="utf-8").splitlines()
        pattern = re.compile(words, re.IGNORECASE)
        matched = [i for i, text in enumerate(lines) if pattern.search(text)]
        rng = random.Random(4)
        picked = sorted(rng.sample(matched, min(PER_LANGUAGE_MATCHED, len(matched))))
        rest = [i for i in range(len(lines)) if i not in set(picked)]
        picked += sorted(rng.sample(rest, PER_LANGUAGE_RANDOM))
        chosen.extend((dataset, row) for row in sorted(picked))
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_root = Path(__file__).resolve().parents[3] / "shared" / "data"
    parser.add_argument("--data-root", type=Path, default=default_root)
    args = parser.parse_args()
    for dataset, row in select(args.data_root):
        print(f"{dataset},{row}")


if __name__ == "__main__":
    main()
