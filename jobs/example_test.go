package jobs

import "fmt"

// Checking a jobs file: every problem, with where it is.
func ExampleParse() {
	_, err := Parse("jobs.yaml", []byte(`jobs:
  - name: render
    kind: test.make
    params: {size: large}
`))
	fmt.Println(err)
	// Output:
	// jobs.yaml:4:20: param size must be a number, not a string
	//  4 |     params: {size: large}
	//    |                    ^
}

// Expanding a job of generated inputs into its tasks.
func ExampleFile_Expand() {
	f, err := Parse("jobs.yaml", []byte(`jobs:
  - name: pairs
    kind: test.pair
    count: 3
    inputs:
      a: {random: [4, 4], seed: 10}
      b: {identity: 4}
`))
	if err != nil {
		panic(err)
	}
	plan, err := f.Expand()
	if err != nil {
		panic(err)
	}
	for _, t := range plan.Jobs[0].Tasks {
		fmt.Println(t.Name, "seed", t.Inputs["a"].Gen.Seed, "->", t.Output)
	}
	// Output:
	// 0 seed 10 -> out/pairs/0.npy
	// 1 seed 11 -> out/pairs/1.npy
	// 2 seed 12 -> out/pairs/2.npy
}
