[ "a.age" ]
