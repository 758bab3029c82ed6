"""The hooks a batchd plugin may implement.

Hook names and arguments are public: they evolve only by adding arguments, and an
implementation receives only the arguments it names. batchd calls each implementation
on its own, inside an error boundary that reports a failure with the plugin's name.
"""

from pluggy import HookimplMarker, HookspecMarker

hookspec = HookspecMarker("batchd")
hookimpl = HookimplMarker("batchd")


@hookspec
def batchd_register_tasks(register):
    """Call ``register(task)`` with an instance of each ``batchd.tasks.Task`` this plugin provides."""


@hookspec(firstresult=True)
def batchd_load_document(path, source, data, config):
    """Return a ``batchd.documents.Document`` made from ``data``, the bytes of ``path``, or None.

    Raise ``batchd.documents.LoadError`` with a reason a person understands when the
    bytes are of your type but cannot be used. Stops at first non-None result.
    """


@hookspec
def batchd_adjust_request(task, document, params):
    """Return the params dict to batch instead of ``params`` (task ``task``, for ``document``), or None to keep them."""


@hookspec
def batchd_document_finished(source, folder, result):
    """React to a document whose outbox ``folder`` is complete (``result``: its result.json); returns nothing."""


@hookspec
def batchd_startup(config):
    """Prepare before the daemon takes documents (``config`` is the loaded Config); returns nothing."""


@hookspec
def batchd_shutdown():
    """Clean up when the daemon stops; returns nothing."""


@hookspec
def batchd_register_commands(cli):
    """Add click commands to the ``batchd`` command group ``cli`` (``@cli.command()``); returns nothing."""
