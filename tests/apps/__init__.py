"""Whole apps written as users of the library write them, for the tests beside them."""
