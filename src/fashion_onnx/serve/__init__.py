"""``fashion-serve``: the models over HTTP, speaking the KServe v2 / open inference protocol,
with dynamic batching, limits and metrics; scaled out on Ray Serve with ``--engine ray``.

Modules: ``protocol`` (v2 parsing and encoding, the binary extension, multipart, errors to
HTTP statuses), ``batching`` (requests gathered into engine calls), ``model`` (a model as
served: session, contract, metadata), ``metrics`` (Prometheus text), ``app`` (the ASGI app
and its server), ``ray_serve`` (the same app on Ray Serve), ``cli`` (the command).
Install with ``pip install 'fashion-onnx[serve,cpu]'``.
"""
