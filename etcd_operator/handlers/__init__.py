"""kopf handlers, one module per resource kind. Importing this package registers them."""
