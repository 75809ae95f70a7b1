"""The admin console in the browser, served by the API under ``/ui/`` (see ``api.ui.app``)."""
