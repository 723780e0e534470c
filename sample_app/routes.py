"""Page routes, in one place so pages and redirects never disagree."""

CHAT = "/"
SIGN_IN = "/sign-in"
REGISTER = "/register"
