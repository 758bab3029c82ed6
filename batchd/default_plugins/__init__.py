"""Built-in plugins: registered like any other plugin, so a user's plugin can replace them."""
