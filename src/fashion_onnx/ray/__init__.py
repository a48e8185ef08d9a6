"""fashion-onnx on a Ray cluster (the ``[ray]`` extra), imported only when asked for:

- ``cluster``: joining a cluster (address, token authentication, clear errors), the rules
  ``fashion-infer --engine ray`` and ``fashion-serve --engine ray`` share;
- ``data``: the classification job on Ray Data (decode, prepare and classify on the
  workers; rows back to the driver in order);
- ``parquet``: ``--format parquet`` on Ray, as resumable parts with names of their own;
- ``serve``: the HTTP app on Ray Serve.
"""
