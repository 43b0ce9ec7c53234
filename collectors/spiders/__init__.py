"""One module per source kind; each defines a `MentionSpider` subclass named after the kind."""
