module example.com/memgate-demo

go 1.19
