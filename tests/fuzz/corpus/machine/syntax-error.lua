-- SPDX-License-Identifier: MIT
-- tests/machines/syntax-error.lua: a missing comma (syntax error)
return {
  devices = {
    { class = "cpu" name = "host" },
  },
}
