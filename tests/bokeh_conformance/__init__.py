"""bokeh.client's own client tests, ported to run against bokeh.client and this package."""
