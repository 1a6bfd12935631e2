import csv
from pathlib import Path

import pytest
import requests

from landmarks.synthetic import embedded_source


def test_embedded_source_serves_every_valid_row_while_open() -> None:
    with embedded_source(classes=2, images_per_class=3, size=48, seed=1) as source:
        with Path(source.metadata).open() as handle:
            rows = list(csv.DictReader(handle))
        assert all(row["url"].startswith(source.base_url) for row in rows)
        statuses = [requests.get(row["url"], timeout=5).status_code for row in rows]
        # Two planted dead URLs; every other row is served.
        assert statuses.count(404) == 2
        assert statuses.count(200) == len(rows) - 2
        assert Path(source.labels).exists()
        root = Path(source.metadata).parent
    assert not root.exists()
    with pytest.raises(requests.ConnectionError):
        requests.get(rows[0]["url"], timeout=2)
