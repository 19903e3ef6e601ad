package dashboard

import (
	"fmt"

	"github.com/tasker-systems/tasker-go/domain"
)

// Layout of the DAG drawing, in SVG user units.
const (
	nodeWidth  = 180
	nodeHeight = 44
	gapX       = 60
	gapY       = 24
	margin     = 16
)

// dagNode is one step box of the DAG drawing.
type dagNode struct {
	Name  string
	State string // "" on a template's DAG
	X, Y  int
	W, H  int
	// Attempts is shown under the name on a task's DAG.
	Attempts int
}

// dagEdge is a dependency arrow, parent → child, as a cubic path.
type dagEdge struct {
	From, To string
	Path     string
}

// dag is a laid-out DAG.
type dag struct {
	Nodes         []dagNode
	Edges         []dagEdge
	Width, Height int
}

// layoutDAG places steps in columns by depth (the longest dependency chain
// above them) and rows by template order within a column, so a diamond draws
// as one, two, one. A dependency on an unknown step is ignored, and a cycle
// (rejected by template validation anyway) cannot loop: depth is bounded by
// the step count.
func layoutDAG(steps []domain.StepDefinition, states map[string]string, attempts map[string]int) dag {
	index := make(map[string]int, len(steps))
	for i, s := range steps {
		index[s.Name] = i
	}
	depth := make([]int, len(steps))
	for range steps { // relax: at most len(steps) rounds settle every depth
		changed := false
		for i, s := range steps {
			for _, d := range s.Dependencies {
				j, ok := index[d]
				if ok && depth[j]+1 > depth[i] && depth[j]+1 < len(steps) {
					depth[i], changed = depth[j]+1, true
				}
			}
		}
		if !changed {
			break
		}
	}
	rows := map[int]int{}
	var out dag
	pos := make([]dagNode, len(steps))
	maxCol, maxRow := 0, 0
	for i, s := range steps {
		col, row := depth[i], rows[depth[i]]
		rows[col]++
		maxCol, maxRow = max(maxCol, col), max(maxRow, row)
		pos[i] = dagNode{Name: s.Name, State: states[s.Name], Attempts: attempts[s.Name],
			X: margin + col*(nodeWidth+gapX), Y: margin + row*(nodeHeight+gapY), W: nodeWidth, H: nodeHeight}
	}
	out.Nodes = pos
	for i, s := range steps {
		for _, d := range s.Dependencies {
			j, ok := index[d]
			if !ok {
				continue
			}
			from, to := pos[j], pos[i]
			x1, y1 := from.X+from.W, from.Y+from.H/2
			x2, y2 := to.X-6, to.Y+to.H/2
			mid := (x1 + x2) / 2
			out.Edges = append(out.Edges, dagEdge{From: d, To: s.Name,
				Path: fmt.Sprintf("M%d,%d C%d,%d %d,%d %d,%d", x1, y1, mid, y1, mid, y2, x2, y2)})
		}
	}
	out.Width = 2*margin + (maxCol+1)*nodeWidth + maxCol*gapX
	out.Height = 2*margin + (maxRow+1)*nodeHeight + maxRow*gapY
	return out
}
