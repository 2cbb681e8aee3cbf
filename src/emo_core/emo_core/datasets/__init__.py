"""On-disk datasets: motor babbling (``babbling``) and human expression sequences (``human``)."""
