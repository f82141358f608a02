-- SPDX-License-Identifier: MIT
-- tests/machines/not-a-table.lua: returns a number instead of a table
return 42
