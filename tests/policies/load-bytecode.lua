-- expect: refused
-- log: field 'dump'
return load(string.dump(function() end))
