package matrix_test

import (
	"encoding/json"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/ppool/ppool/jobs/matrix"
	"gonum.org/v1/gonum/mat"
)

func Example() {
	dir, err := os.MkdirTemp("", "matrix-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// A worker reads its inputs, computes, and writes its output.
	a := mat.NewDense(2, 2, []float64{4, 7, 2, 6})
	b := mat.NewDense(2, 1, []float64{1, 2})
	if err := matrix.Write(filepath.Join(dir, "a.npy"), a); err != nil {
		log.Fatal(err)
	}
	a, err = matrix.Read(filepath.Join(dir, "a.npy"))
	if err != nil {
		log.Fatal(err)
	}

	x, err := matrix.Solve(a, b)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("x = %.4g\n", mat.Formatted(x.T()))

	inv, err := matrix.Inverse(a)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("inv(a) =\n%.4g\n", mat.Formatted(inv))

	_, err = matrix.Inverse(mat.NewDense(2, 2, []float64{1, 2, 2, 4}))
	fmt.Println(err)

	stats, err := json.Marshal(matrix.Summarize(a, false))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(stats))

	// Output:
	// x = [-0.8   0.6]
	// inv(a) =
	// ⎡ 0.6  -0.7⎤
	// ⎣-0.2   0.4⎦
	// inverse: matrix is singular: a pivot of its LU factorization is exactly zero
	// {"rows":2,"cols":2,"sum":19,"mean":4.75,"min":2,"max":7,"norm_frobenius":10.246950765959598,"norm_1":13,"norm_inf":11}
}

// ExamplePlanTiles computes a product in tiles, as workers would, and puts
// it together.
func ExamplePlanTiles() {
	a, _ := matrix.Random(300, 200, 1)
	b, _ := matrix.Random(200, 250, 2)
	tiles, err := matrix.PlanTiles(300, 200, 250, 128)
	if err != nil {
		log.Fatal(err)
	}
	blocks := make([]*mat.Dense, len(tiles))
	for i, tile := range tiles { // each one a task on some worker
		if blocks[i], err = matrix.MultiplyTile(a, b, tile); err != nil {
			log.Fatal(err)
		}
	}
	c, err := matrix.Assemble(300, 250, tiles, blocks)
	if err != nil {
		log.Fatal(err)
	}
	direct, _ := matrix.Multiply(a, b)
	// Each element is the same dot product of length 200, perhaps summed
	// in another order: with non-negative factors, as here, the two agree
	// to 2·γ_200 ≈ 4.4e-14 relative (see PlanTiles), bit for bit on gonum.
	fmt.Println(len(tiles), "tiles; equal to the direct product within 1e-12:", mat.EqualApprox(c, direct, 1e-12))
	// Output: 6 tiles; equal to the direct product within 1e-12: true
}
