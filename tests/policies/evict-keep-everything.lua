-- expect: completes
-- log: keeps every replica
-- Every victim is to stay on the full card: honoured while others can
-- leave, overruled when nothing else can make room (a task must not wait
-- forever for room that "keep" never frees).
function place(task, m) return "gddr" end
function evict(buffer, node, m) return "keep" end
