package workerbin

// ChooseFor is choose, for the end-to-end test.
var ChooseFor = choose
