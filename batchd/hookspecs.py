"""The hooks a batchd plugin may implement.

Hook names and arguments are public: they evolve only by adding arguments, and an
implementation receives only the arguments it names.
"""

from pluggy import HookimplMarker, HookspecMarker

hookspec = HookspecMarker("batchd")
hookimpl = HookimplMarker("batchd")


@hookspec
def batchd_register_tasks(register):
    """Call ``register(task)`` for each Task this plugin provides."""


@hookspec(firstresult=True)
def batchd_load_document(path, source, data, config):
    """Return a Document for the bytes ``data`` of the file ``path``, or None to leave it to another loader.

    Raise ``batchd.documents.LoadError`` with a reason a person understands when the
    bytes are of your type but cannot be used. Stops at first non-None result.
    """


@hookspec
def batchd_adjust_request(task, document, params):
    """Return a new params dict to send instead of ``params``, or None to leave it."""


@hookspec
def batchd_document_finished(source, folder, result):
    """React to a document whose outbox folder (with its result.json) is complete."""


@hookspec
def batchd_startup(config):
    """Run once when the daemon has started, before it takes documents."""


@hookspec
def batchd_shutdown():
    """Run once when the daemon stops."""


@hookspec
def batchd_register_commands(cli):
    """Add click commands to the ``batchd`` command group."""
