"""The study's datasets: the table of Hub repositories (table.py) and the one loading path (loading.py)."""
