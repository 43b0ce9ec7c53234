"""One module per source kind: `collectors/spiders/<kind>.py` defines a `MentionSpider` subclass
whose `name` is that kind (the `kind` of a `[[sources]]` entry in tocsin.toml).

`collectors.crawl.spider_class(kind)` finds it by that convention, so a new source needs no
registration: write the module, subclass `collectors.spiders.base.MentionSpider`, done.
"""
